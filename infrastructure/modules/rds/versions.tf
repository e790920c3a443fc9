terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
      # aws.replica: the disaster-recovery region (DR-5). Pass it in even when dr_mode is
      # "none"; nothing is created there then.
      configuration_aliases = [aws.replica]
    }
  }
}
