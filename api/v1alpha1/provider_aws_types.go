package v1alpha1

// AWSProvider reads AWS Secrets Manager.
type AWSProvider struct {
	// Region, e.g. eu-west-1.
	Region string `json:"region"`
	// Endpoint overrides the service endpoint (VPC endpoints, tests).
	Endpoint string `json:"endpoint,omitempty"`
	// Auth selects credentials; empty means the SDK's default chain
	// (environment, shared config, instance role).
	Auth AWSAuth `json:"auth,omitempty"`
}

// AWSAuth selects AWS credentials. At most one of Static or Profile is set.
type AWSAuth struct {
	// Profile is a shared-config profile name.
	Profile string `json:"profile,omitempty"`
	// Static keys, each from the environment or a file.
	Static *AWSStaticAuth `json:"static,omitempty"`
}

// AWSStaticAuth is a static access key pair.
type AWSStaticAuth struct {
	AccessKeyID     ValueSource  `json:"accessKeyID"`
	SecretAccessKey ValueSource  `json:"secretAccessKey"`
	SessionToken    *ValueSource `json:"sessionToken,omitempty"`
}
