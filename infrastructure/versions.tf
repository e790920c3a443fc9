terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # State lives in an S3 bucket created beforehand (docs/infrastructure.md, "Apply order").
  # Partial configuration: pass bucket, key, region and locking with
  # `terraform init -backend-config=backend.hcl`.
  backend "s3" {}
}
