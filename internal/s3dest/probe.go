package s3dest

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// probeSessionSeconds is the shortest session STS grants; a probe's credentials are dropped
// at once anyway.
const probeSessionSeconds = 900

// ProbeAssumeRoleWithoutExternalID asks STS for the customer's role WITHOUT an ExternalId, the
// way a confused deputy would. A correct trust policy (condition sts:ExternalId = account id)
// denies it. It returns nil when STS granted the role, which means the trust policy lacks the
// condition, and otherwise the classified error (KindAssumeRoleDenied is the good outcome).
// Any credentials STS hands out are dropped unused: this never touches the bucket.
func (c *Client) ProbeAssumeRoleWithoutExternalID(ctx context.Context, t Target) error {
	_, err := c.sts.AssumeRole(ctx, &sts.AssumeRoleInput{
		RoleArn:         aws.String(t.RoleARN),
		RoleSessionName: aws.String(c.sessionName(t.AccountID)),
		DurationSeconds: aws.Int32(probeSessionSeconds),
	})
	if err != nil {
		return classifyAssumeRole(err, opContext{account: t.AccountID, roleARN: t.RoleARN})
	}
	return nil
}
