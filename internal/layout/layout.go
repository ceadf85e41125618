// Package layout names the objects of a dump, as the customer contract fixes them:
//
//	<prefix>/receipt.json
//	<prefix>/<YYYY-MM-DDTHH:MM>/<table>/<table>_<12-digit index><extension>
//
// <prefix>/ is the account's optional sub-folder. Every key the exporter writes comes from here.
package layout

import (
	"fmt"
	"time"
)

// FolderTimeFormat is the dump folder's name: the dump time in UTC to the minute.
const FolderTimeFormat = "2006-01-02T15:04"

// ReceiptName is the object customers hang their S3 trigger on.
const ReceiptName = "receipt.json"

// DumpFolder names the folder of the dump taken at t.
func DumpFolder(t time.Time) string { return t.UTC().Format(FolderTimeFormat) }

func join(prefix, rest string) string {
	if prefix == "" {
		return rest
	}
	return prefix + "/" + rest
}

// TableFolder is the folder of one table of one dump, relative to the bucket root (the
// receipt's "folder" value).
func TableFolder(prefix, dumpFolder, table string) string {
	return join(prefix, dumpFolder+"/"+table)
}

// ShardKey is the key of shard index of a table. Indexes are contiguous from 0.
func ShardKey(prefix, dumpFolder, table string, index int, extension string) string {
	return fmt.Sprintf("%s/%s_%012d%s", TableFolder(prefix, dumpFolder, table), table, index, extension)
}

// ReceiptKey is the root receipt, overwritten by every complete dump.
func ReceiptKey(prefix string) string { return join(prefix, ReceiptName) }

// DumpReceiptKey is the copy of the receipt kept inside the dump folder, so the history of
// receipts survives the root copy being overwritten.
func DumpReceiptKey(prefix, dumpFolder string) string {
	return join(prefix, dumpFolder+"/"+ReceiptName)
}
