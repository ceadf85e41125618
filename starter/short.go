package main

import (
	"regexp"
	"strings"
)

var (
	// sdkWrapper is the Temporal SDK's wrapping of a failure: "activity error (type:
	// ExportTable, scheduledEventID: 12, startedEventID: 13, identity: 1@host@): ".
	sdkWrapper = regexp.MustCompile(`(?:activity|child workflow execution|workflow execution|workflow) error \([^()]*\): `)
	// appErrorTail is an application error's "(type: PutObjectDenied, retryable: false)".
	appErrorTail = regexp.MustCompile(`\s*\(type: [^()]*, retryable: (?:true|false)\)`)
	// dumpPrefix is the workflow's "account acme dump 2024-05-10T04:00: ", which status and
	// run already show.
	dumpPrefix = regexp.MustCompile(`^account \S+ dump \S+: `)
	// tableFailed is the workflow's "table revenue failed: ".
	tableFailed = regexp.MustCompile(`\btable (\S+) failed: `)
	// spaces are runs of whitespace, newlines included: the short form is one line.
	spaces = regexp.MustCompile(`\s+`)
)

// tailMarkers start the parts of an error that name the transport's details rather than the
// cause and the fix: the AWS SDK's operation, status code, request and host ids and error
// code, gRPC and Google API status lines, a URL error. The short message ends before the
// first of them.
var tailMarkers = []string{
	": operation error ", ", operation error ",
	": failed to refresh cached credentials", ", failed to refresh cached credentials",
	": https response error ", ", https response error ",
	": api error ", ", api error ",
	": rpc error: ", ": googleapi: ",
	`: Post "`, `: Put "`, `: Get "`, ": dial tcp ",
	// A secondary hint: the fix comes first, the other things to check follow.
	"; also ",
}

// shortMessage is an error message reduced to its cause and fix, on one line: without the
// Temporal SDK's wrapping (activity error (type: ..., scheduledEventID: ...)), the
// application error's (type: ..., retryable: ...), the dump prefix status already shows, the
// AWS SDK's tail (operation error S3: PutObject, https response error StatusCode: 403,
// RequestID: ..., HostID: ..., api error AccessDenied: ...) and secondary hints ("; also
// check ..."). --verbose prints the whole message.
func shortMessage(msg string) string {
	s := spaces.ReplaceAllString(strings.TrimSpace(msg), " ")
	s = sdkWrapper.ReplaceAllString(s, "")
	s = appErrorTail.ReplaceAllString(s, "")
	s = dumpPrefix.ReplaceAllString(s, "")
	s = tableFailed.ReplaceAllString(s, "table $1: ")
	cut := len(s)
	for _, m := range tailMarkers {
		if i := strings.Index(s, m); i > 0 && i < cut {
			cut = i
		}
	}
	s = strings.TrimRight(s[:cut], " :;,")
	if s == "" {
		return spaces.ReplaceAllString(strings.TrimSpace(msg), " ")
	}
	return s
}

// message is shortMessage, or the whole message with verbose.
func message(msg string, verbose bool) string {
	if verbose {
		return msg
	}
	return shortMessage(msg)
}
