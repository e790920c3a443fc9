################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the cluster, service, task family and load balancer (at most 26 characters, so `<name>-green` fits the 32-character target-group limit)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,25}$", var.name))
    error_message = "name must be 2-26 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the target groups live in."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets for the load balancer (at least two AZs)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets for the Fargate tasks."
  type        = list(string)
}

variable "alb_security_group_id" {
  description = "Security group of the load balancer (from the vpc module)."
  type        = string
}

variable "tasks_security_group_id" {
  description = "Security group of the tasks (from the vpc module)."
  type        = string
}

variable "log_retention_days" {
  description = "Retention in days of the application, WAF and load-balancer access logs (DR-1: 90 days)."
  type        = number
  default     = 90

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (for example 30, 90, 365)."
  }
}

################################################################################
# Task definition
################################################################################

variable "container_name" {
  description = "Name of the application container in the task definition."
  type        = string
  default     = "app"
}

variable "container_image" {
  description = "Image of the first task-definition revision. deployops registers later revisions itself, so Terraform ignores changes after creation."
  type        = string
}

variable "container_port" {
  description = "Port the application listens on (CFG-2: PORT, default 3000)."
  type        = number
  default     = 3000
}

variable "task_cpu" {
  description = "Fargate task CPU units (256, 512, 1024, 2048, 4096, ...)."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory in MiB; must be valid for task_cpu."
  type        = number
  default     = 1024
}

variable "cpu_architecture" {
  description = "CPU architecture of the task: X86_64 or ARM64 (must match the image)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "container_environment" {
  description = "Plain environment variables of the container (no secrets here; use container_secrets)."
  type        = map(string)
  default     = {}
}

variable "container_secrets" {
  description = "Environment variables filled from Secrets Manager at task start: name => secret ARN, optionally with a JSON key suffix (`arn:...:secret:app-db-AbCdEf:password::`). The execution role may read exactly these secrets (SEC-1, SEC-4)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for arn in values(var.container_secrets) : can(regex("^arn:[^:]+:secretsmanager:[^:]+:[0-9]{12}:secret:", arn))])
    error_message = "container_secrets values must be Secrets Manager secret ARNs."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the secrets in container_secrets (empty when they use the AWS-managed key)."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories the execution role may pull from. Empty when the image comes from a public registry."
  type        = list(string)
  default     = []
}

variable "task_role_policy_arns" {
  description = "IAM policies the application itself needs (attached to the task role, which has no permissions otherwise)."
  type        = list(string)
  default     = []
}

################################################################################
# Load balancer and target groups
################################################################################

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listeners."
  type        = string
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listeners."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "test_listener_port" {
  description = "Port of the test listener that serves the green target group before the switch (DEP-2)."
  type        = number
  default     = 8443
}

variable "health_check_path" {
  description = "Path the target groups probe (DEP-1)."
  type        = string
  default     = "/health"
}

variable "deregistration_delay" {
  description = "Seconds the load balancer drains a target before removing it."
  type        = number
  default     = 30
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "enable_waf" {
  description = "Attach a WAF web ACL with the AWS managed common, known-bad-inputs and IP-reputation rule groups to the load balancer."
  type        = bool
  default     = true
}

################################################################################
# Deployment and scaling
################################################################################

variable "deployment_mode" {
  description = "How deployops deploys: \"services\" (one ECS service per colour, the guide's blue-green) or \"ecs-native\" (one service deployed by ECS's own BLUE_GREEN strategy); must match aws.mode in deployops.yaml."
  type        = string
  default     = "services"

  validation {
    condition     = contains(["services", "ecs-native"], var.deployment_mode)
    error_message = "deployment_mode must be \"services\" or \"ecs-native\"."
  }
}

variable "deployment_maximum_percent" {
  description = "Upper limit of running tasks during a rolling deployment, as a percentage of the desired count (IAC-4)."
  type        = number
  default     = 200
}

variable "deployment_minimum_healthy_percent" {
  description = "Lower limit of healthy tasks during a rolling deployment, as a percentage of the desired count (IAC-4)."
  type        = number
  default     = 100
}

variable "health_check_grace_period_seconds" {
  description = "Seconds ECS ignores failing load-balancer health checks of a new task (DEP-2 waits 60 s for health)."
  type        = number
  default     = 60
}

variable "min_capacity" {
  description = "Minimum number of tasks; also the initial desired count (IAC-3)."
  type        = number
  default     = 2
}

variable "max_capacity" {
  description = "Maximum number of tasks (IAC-3)."
  type        = number
  default     = 10
}

variable "cpu_target" {
  description = "Average service CPU utilisation, in percent, that target tracking holds (IAC-5)."
  type        = number
  default     = 70
}

variable "scale_in_cooldown" {
  description = "Seconds after a scale-in before another scale-in (IAC-5)."
  type        = number
  default     = 300
}

variable "scale_out_cooldown" {
  description = "Seconds after a scale-out before another scale-out (IAC-5)."
  type        = number
  default     = 300
}
