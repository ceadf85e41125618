package main

import (
	"strings"
	"testing"
)

func TestShortMessage(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{
			name: "parked dump, S3 write denied (the workflow's message as status showed it)",
			in: "account cli-parked dump 2026-11-24T18:28: table revenue failed: activity error (type: ExportTable, scheduledEventID: 14, startedEventID: 15, identity: 31382@vm@): " +
				"writing s3://denied-bucket/exports/cli-parked/2026-11-24T18:28/revenue/revenue_000000000000.parquet.gz was denied: the role's permission policy must allow s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::denied-bucket/*; " +
				"also check the bucket policy and any SCP for an explicit deny, and that the bucket name is right: operation error S3: PutObject, https response error StatusCode: 403, RequestID: 18EB0E8E3C20BA4E, " +
				"HostID: 5f10ede7fc15caf0a4593c77201f7ebeb67302b28c60253eaa9caaafc26fb309, api error AccessDenied: Access Denied. (type: PutObjectDenied, retryable: false)",
			want: "table revenue: writing s3://denied-bucket/exports/cli-parked/2026-11-24T18:28/revenue/revenue_000000000000.parquet.gz was denied: the role's permission policy must allow s3:PutObject and s3:PutObjectAcl on arn:aws:s3:::denied-bucket/*",
		},
		{
			name: "assume role denied",
			in: "assuming the customer's role arn:aws:iam::123456789012:role/dreamdata was denied: in the role's trust policy the Principal must be the platform's exporter role and the condition sts:ExternalId must equal \"acme\" (the account id); " +
				"also check the role ARN in the account settings: operation error STS: AssumeRole, https response error StatusCode: 403, RequestID: 4e6d2f3c-1111-2222-3333-444455556666, " +
				"api error AccessDenied: User: arn:aws:sts::485801740390:assumed-role/dreamdata_destination_s3/i-0abc is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/dreamdata",
			want: "assuming the customer's role arn:aws:iam::123456789012:role/dreamdata was denied: in the role's trust policy the Principal must be the platform's exporter role and the condition sts:ExternalId must equal \"acme\" (the account id)",
		},
		{
			name: "platform credentials, through the credential cache",
			in:   "STS rejected the platform's own AWS credentials: fix the worker's AWS credential chain (environment, profile or instance role): failed to refresh cached credentials, operation error STS: AssumeRole, https response error StatusCode: 403, RequestID: , api error SignatureDoesNotMatch: The request signature we calculated does not match the signature you provided.",
			want: "STS rejected the platform's own AWS credentials: fix the worker's AWS credential chain (environment, profile or instance role)",
		},
		{
			name: "KMS",
			in: "writing s3://acme-data/exports/2024-05-10T04:00/events/events_000000000003.parquet.gz failed on the KMS key arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab: the customer's role needs kms:GenerateDataKey and kms:Decrypt on that key (and the key policy must allow the role); check kms_key_arn in the account settings: " +
				"operation error S3: UploadPart, https response error StatusCode: 403, RequestID: ABCD, HostID: xyz=, api error KMS.AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/dreamdata/x is not authorized to perform: kms:GenerateDataKey",
			want: "writing s3://acme-data/exports/2024-05-10T04:00/events/events_000000000003.parquet.gz failed on the KMS key arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab: the customer's role needs kms:GenerateDataKey and kms:Decrypt on that key (and the key policy must allow the role); check kms_key_arn in the account settings",
		},
		{
			name: "BigQuery permission, gRPC status",
			in: "activity error (type: ExportTable, scheduledEventID: 12, startedEventID: 13, identity: 7@worker-5f9@): reading BigQuery table data-platform.acme.events was denied: the worker's Google identity needs roles/bigquery.dataViewer on the dataset and roles/bigquery.readSessionUser on the billing project data-platform: " +
				"rpc error: code = PermissionDenied desc = request failed: the user does not have 'bigquery.readsessions.create' permission for 'projects/data-platform' (type: BigQueryPermissionDenied, retryable: false)",
			want: "reading BigQuery table data-platform.acme.events was denied: the worker's Google identity needs roles/bigquery.dataViewer on the dataset and roles/bigquery.readSessionUser on the billing project data-platform",
		},
		{
			name: "BigQuery not found, Google API error",
			in:   "BigQuery table data-platform.acme.evnts does not exist: check the account's bigquery.project, bigquery.dataset and tables: googleapi: Error 404: Not found: Table data-platform:acme.evnts, notFound",
			want: "BigQuery table data-platform.acme.evnts does not exist: check the account's bigquery.project, bigquery.dataset and tables",
		},
		{
			name: "failed dump, as run --wait gets it",
			in: "workflow execution error (type: ExportAccount, workflowID: s3-export-acme-2026-11-24T04:00:00Z, runID: 0193a2b4-7c1d-7e2f-8a9b-0c1d2e3f4a5b): nobody fixed it before 2026-11-24T14:50:00Z, ahead of the next scheduled dump: " +
				"table revenue failed: activity error (type: ExportTable, scheduledEventID: 14, startedEventID: 15, identity: 31382@vm@): bucket \"acme-dta\" does not exist: check the bucket name in the account settings (the name, not the ARN): " +
				"operation error S3: PutObject, https response error StatusCode: 404, RequestID: X, HostID: Y, api error NoSuchBucket: The specified bucket does not exist (type: BucketNotFound, retryable: false)",
			want: "nobody fixed it before 2026-11-24T14:50:00Z, ahead of the next scheduled dump: table revenue: bucket \"acme-dta\" does not exist: check the bucket name in the account settings (the name, not the ARN)",
		},
		{
			name: "a transport error with a URL",
			in:   "writing s3://acme-data/exports/x.parquet.gz failed: Put \"https://acme-data.s3.eu-west-1.amazonaws.com/exports/x.parquet.gz?partNumber=3\": dial tcp 52.218.1.1:443: i/o timeout",
			want: "writing s3://acme-data/exports/x.parquet.gz failed",
		},
		{
			name: "already short",
			in:   "STS refused the role ARN arn:aws:iam::x as malformed: correct role_arn in the account settings",
			want: "STS refused the role ARN arn:aws:iam::x as malformed: correct role_arn in the account settings",
		},
		{
			name: "several lines",
			in:   "bucket \"b\" is not in region eu-west-1:\n  set the bucket's region in the account settings",
			want: "bucket \"b\" is not in region eu-west-1: set the bucket's region in the account settings",
		},
		{
			name: "a bare SDK error keeps its start",
			in:   "operation error S3: PutObject, https response error StatusCode: 500, RequestID: A, HostID: B, api error InternalError: We encountered an internal error.",
			want: "operation error S3: PutObject",
		},
	}
	for _, c := range cases {
		got := shortMessage(c.in)
		if got != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, got, c.want)
		}
		if strings.ContainsAny(got, "\n") || strings.Contains(got, "RequestID") || strings.Contains(got, "scheduledEventID") {
			t.Errorf("%s: not one clean line: %s", c.name, got)
		}
		if message(c.in, true) != c.in {
			t.Errorf("%s: verbose must keep the whole message", c.name)
		}
	}
}
