// Package receipt builds receipt.json, the file customers hang their S3 trigger on.
//
// The seed contract fixes "timestamp" and, per table, "folder" and "total_file_count"; those
// stay exactly as documented. The other fields are additions a loader may use and may ignore.
package receipt

import (
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is bumped when the receipt's shape changes incompatibly.
const FormatVersion = 1

// TimestampFormat renders the dump time as the contract shows it: UTC with microseconds.
const TimestampFormat = "2006-01-02T15:04:05.000000Z"

// Receipt describes one complete dump.
type Receipt struct {
	Timestamp string           `json:"timestamp"`
	Tables    map[string]Table `json:"tables"`

	FormatVersion int    `json:"format_version"`
	AccountID     string `json:"account_id,omitempty"`
	// SnapshotTime is the BigQuery snapshot the dump's tables were read at, unless a table
	// says otherwise (Table.SnapshotTime).
	SnapshotTime string `json:"snapshot_time,omitempty"`
}

// Table describes one table's folder in the dump.
type Table struct {
	Folder         string `json:"folder"`
	TotalFileCount int    `json:"total_file_count"`

	RowCount int64   `json:"row_count"`
	Schema   []Field `json:"schema,omitempty"`
	Files    []File  `json:"files,omitempty"`
	// SnapshotTime is the BigQuery snapshot this table was read at: the dump's, or later for
	// a table an engineer reran before the receipt (upstream data was fixed).
	SnapshotTime string `json:"snapshot_time,omitempty"`
}

// Field is one column as BigQuery defines it.
type Field struct {
	Name   string  `json:"name"`
	Type   string  `json:"type"`
	Mode   string  `json:"mode"`
	Fields []Field `json:"fields,omitempty"`
}

// File is one shard.
type File struct {
	Key   string `json:"key"`
	Rows  int64  `json:"rows"`
	Bytes int64  `json:"bytes"`
	// CRC32C is the base64 CRC32C S3 verified on upload (empty when the server computes none).
	CRC32C string `json:"crc32c,omitempty"`
}

// Timestamp formats a dump time for the receipt.
func Timestamp(t time.Time) string { return t.UTC().Format(TimestampFormat) }

// Marshal renders the receipt, indented for people who open it in the S3 console.
func (r Receipt) Marshal() ([]byte, error) {
	if r.FormatVersion == 0 {
		r.FormatVersion = FormatVersion
	}
	if err := r.Check(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(r, "", "  ")
}

// Check enforces what the contract promises: at least one table, and every table with at
// least one file (an empty table still has one parquet file with its schema).
func (r Receipt) Check() error {
	if _, err := time.Parse(TimestampFormat, r.Timestamp); err != nil {
		return fmt.Errorf("receipt timestamp %q: %w", r.Timestamp, err)
	}
	if len(r.Tables) == 0 {
		return fmt.Errorf("receipt lists no table")
	}
	for name, t := range r.Tables {
		if t.TotalFileCount < 1 {
			return fmt.Errorf("receipt table %s has no file", name)
		}
		if t.Folder == "" {
			return fmt.Errorf("receipt table %s has no folder", name)
		}
		if len(t.Files) > 0 && len(t.Files) != t.TotalFileCount {
			return fmt.Errorf("receipt table %s lists %d files but counts %d", name, len(t.Files), t.TotalFileCount)
		}
	}
	return nil
}
