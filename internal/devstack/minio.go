package devstack

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/madmin-go/v3"
)

// Buckets of the local stack besides CustomerBucket.
const (
	// DeniedBucket exists, but the customer's policy grants nothing on it.
	DeniedBucket = "denied-bucket"
	// MissingBucket is granted by the policy but does not exist.
	MissingBucket = "missing-bucket"
	// CustomerPolicy is the customer's permission policy: PutObject on the bucket, nothing
	// else. (MinIO rejects the action s3:PutObjectAcl in policies; PutObject covers the ACL
	// header there.) Any list, read, head, delete or abort by the exporter is denied.
	CustomerPolicy = "customer-putobject-only"
	// Region the local stack pretends to be in.
	Region = "us-east-1"
)

func customerPolicyJSON() string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::%s/*","arn:aws:s3:::%s/*"]}]}`,
		CustomerBucket, MissingBucket)
}

func (s *Stack) setupMinIO(ctx context.Context) error {
	root := s.RootS3()
	for _, b := range []string{CustomerBucket, DeniedBucket} {
		if _, err := root.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			return fmt.Errorf("create bucket %s: %w", b, err)
		}
	}
	adm, err := madmin.New(strings.TrimPrefix(s.S3Endpoint, "http://"), MinIORootUser, s.MinIORootPassword, false)
	if err != nil {
		return err
	}
	if err := adm.AddCannedPolicy(ctx, CustomerPolicy, []byte(customerPolicyJSON())); err != nil {
		return fmt.Errorf("add policy: %w", err)
	}
	if err := adm.AddUser(ctx, ExporterUser, s.ExporterSecret); err != nil {
		return fmt.Errorf("add user: %w", err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{CustomerPolicy}, User: ExporterUser}); err != nil {
		return fmt.Errorf("attach policy: %w", err)
	}
	return nil
}

// RootS3 is an S3 client with MinIO's root credentials, for checking what landed: the
// exporter's own credentials cannot list or read anything.
func (s *Stack) RootS3() *s3.Client {
	return s.s3Client(MinIORootUser, s.MinIORootPassword)
}

// ExporterS3 is an S3 client with the platform identity's long-lived credentials.
func (s *Stack) ExporterS3() *s3.Client {
	return s.s3Client(ExporterUser, s.ExporterSecret)
}

func (s *Stack) s3Client(user, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.S3Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(user, secret, ""),
	})
}

// AWSConfig is the platform identity's AWS configuration, as the worker would load it.
func (s *Stack) AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(ExporterUser, s.ExporterSecret, ""),
	}
}

// WorkerEnv is the environment that points a worker (and the starter) at this stack.
func (s *Stack) WorkerEnv() []string {
	return []string{
		"TEMPORAL_ADDRESS=" + s.TemporalAddress,
		"TEMPORAL_NAMESPACE=default",
		"AWS_ACCESS_KEY_ID=" + ExporterUser,
		"AWS_SECRET_ACCESS_KEY=" + s.ExporterSecret,
		"AWS_REGION=" + Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"S3_ENDPOINT_URL=" + s.S3Endpoint,
		"STS_ENDPOINT_URL=" + s.S3Endpoint,
		"S3_FORCE_PATH_STYLE=true",
		"BIGQUERY_ENDPOINT=" + s.BigQueryEndpoint,
		"BIGQUERY_STORAGE_ENDPOINT=" + s.BigQueryStorageEndpoint,
		"BIGQUERY_BILLING_PROJECT=" + Project,
	}
}
