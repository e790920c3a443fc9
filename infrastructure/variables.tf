# Defaults mirror infrastructure/defaults.json (the guide's numbers); tests/iac fails when they
# drift apart.

################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the service; with environment it prefixes every resource (`<name>-<environment>`)."
  type        = string
  default     = "deployops"
}

variable "environment" {
  description = "Environment this stack serves (CFG-1)."
  type        = string
  default     = "production"

  validation {
    condition     = contains(["development", "staging", "production"], var.environment)
    error_message = "environment must be development, staging or production."
  }
}

variable "region" {
  description = "Primary AWS region (CFG-5: AWS_REGION)."
  type        = string
  default     = "ap-northeast-1"
}

variable "dr_region" {
  description = "Region prepared for level-3 recovery (DR-5): replicated database backups or a read replica live here."
  type        = string
  default     = "ap-northeast-3"
}

variable "tags" {
  description = "Extra tags for every resource (added to Project, Environment and ManagedBy)."
  type        = map(string)
  default     = {}
}

################################################################################
# Network (IAC-2)
################################################################################

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC (IAC-2)."
  type        = string
  default     = "10.0.0.0/16"
}

variable "azs" {
  description = "Availability zones (IAC-2)."
  type        = list(string)
  default     = ["ap-northeast-1a", "ap-northeast-1c"]
}

variable "public_subnets" {
  description = "Public subnet CIDRs, one per AZ."
  type        = list(string)
  default     = ["10.0.0.0/24", "10.0.1.0/24"]
}

variable "private_subnets" {
  description = "Private subnet CIDRs, one per AZ."
  type        = list(string)
  default     = ["10.0.10.0/24", "10.0.11.0/24"]
}

variable "single_nat_gateway" {
  description = "One NAT gateway instead of one per AZ (cheaper, less available)."
  type        = bool
  default     = false
}

variable "alb_ingress_cidrs" {
  description = "CIDRs allowed to reach the public HTTPS listener."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "test_listener_cidrs" {
  description = "CIDRs (operators, CI) allowed to reach the test listener in addition to the VPC."
  type        = list(string)
  default     = []
}

variable "test_listener_port" {
  description = "Port of the test listener (green before the switch)."
  type        = number
  default     = 8443
}

################################################################################
# Service (IAC-3, IAC-4, IAC-5)
################################################################################

variable "certificate_arn" {
  description = "ACM certificate (in `region`) for the HTTPS listeners."
  type        = string
}

variable "container_image" {
  description = "Image of the first task-definition revision; deployops deploys the later ones."
  type        = string
}

variable "container_port" {
  description = "Port the application listens on (CFG-2: PORT)."
  type        = number
  default     = 3000
}

variable "task_cpu" {
  description = "Fargate task CPU units."
  type        = number
  default     = 512
}

variable "task_memory" {
  description = "Fargate task memory in MiB."
  type        = number
  default     = 1024
}

variable "container_environment" {
  description = "Extra plain environment variables of the container (NODE_ENV, PORT, AWS_REGION and DB_HOST/DB_PORT/DB_NAME are set already)."
  type        = map(string)
  default     = {}
}

variable "container_secrets" {
  description = "Container environment variables read from Secrets Manager: name => secret ARN (for example DB_PASSWORD, JWT_SECRET; SEC-2)."
  type        = map(string)
  default     = {}
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys of the secrets in container_secrets."
  type        = list(string)
  default     = []
}

variable "ecr_repository_arns" {
  description = "ECR repositories the tasks may pull images from."
  type        = list(string)
  default     = []
}

variable "task_role_policy_arns" {
  description = "IAM policies for the application's own AWS calls."
  type        = list(string)
  default     = []
}

variable "health_check_path" {
  description = "Health-check path of both target groups (DEP-1)."
  type        = string
  default     = "/health"
}

variable "deployment_maximum_percent" {
  description = "Rolling update upper limit in percent of the desired count (IAC-4)."
  type        = number
  default     = 200
}

variable "deployment_minimum_healthy_percent" {
  description = "Rolling update lower limit in percent of the desired count (IAC-4)."
  type        = number
  default     = 100
}

variable "min_capacity" {
  description = "Minimum number of tasks (IAC-3)."
  type        = number
  default     = 2
}

variable "max_capacity" {
  description = "Maximum number of tasks (IAC-3)."
  type        = number
  default     = 10
}

variable "cpu_target" {
  description = "Average CPU percentage auto scaling holds (IAC-5)."
  type        = number
  default     = 70
}

variable "scale_in_cooldown" {
  description = "Scale-in cooldown in seconds (IAC-5)."
  type        = number
  default     = 300
}

variable "scale_out_cooldown" {
  description = "Scale-out cooldown in seconds (IAC-5)."
  type        = number
  default     = 300
}

variable "enable_waf" {
  description = "Protect the load balancer with a WAF web ACL of AWS managed rules."
  type        = bool
  default     = true
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention of every CloudWatch log group and of the access logs, in days (DR-1: 90)."
  type        = number
  default     = 90
}

################################################################################
# Database (DR-1, DR-5)
################################################################################

variable "db_engine_version" {
  description = "PostgreSQL version."
  type        = string
  default     = "16"
}

variable "db_instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "db_name" {
  description = "Database name (CFG-3: DB_NAME)."
  type        = string
  default     = "app"
}

variable "db_multi_az" {
  description = "Multi-AZ standby for the database."
  type        = bool
  default     = true
}

variable "db_port" {
  description = "PostgreSQL port (CFG-3: DB_PORT)."
  type        = number
  default     = 5432
}

variable "db_backup_retention_days" {
  description = "Automated backup and PITR window in days (DR-1: 30)."
  type        = number
  default     = 30
}

variable "db_max_connections" {
  description = "PostgreSQL max_connections; the DatabaseConnections alarm fires above 80 % of it."
  type        = number
  default     = 400
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "db_manage_master_user_password" {
  description = "Let RDS keep and rotate the master password in Secrets Manager (SEC-1). Must be false for db_dr_mode = \"read_replica\"."
  type        = bool
  default     = true
}

variable "db_master_password" {
  description = "Master password when db_manage_master_user_password is false (ends up in the state)."
  type        = string
  default     = null
  sensitive   = true
}

variable "db_dr_mode" {
  description = "Level-3 recovery preparation in dr_region (DR-5): backup_replication, read_replica or none."
  type        = string
  default     = "backup_replication"
}

variable "dr_db_subnet_group_name" {
  description = "DB subnet group in dr_region for the read replica (db_dr_mode = \"read_replica\")."
  type        = string
  default     = null
}

variable "dr_db_security_group_ids" {
  description = "Security groups in dr_region for the read replica (db_dr_mode = \"read_replica\")."
  type        = list(string)
  default     = []
}

################################################################################
# Monitoring (MON-1, MON-2)
################################################################################

variable "alarms" {
  description = "Thresholds of the five alarms (MON-1); see modules/monitoring for the fields."
  type = object({
    HighCPUUtilization = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    HighErrorRate = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    LowHealthyHosts = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    HighMemoryUsage = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
    DatabaseConnections = object({
      statistic          = string
      threshold          = number
      comparison         = string
      evaluation_periods = number
      period_seconds     = number
      action             = string
      severity           = string
    })
  })
  default = {
    HighCPUUtilization = {
      statistic          = "Average"
      threshold          = 80
      comparison         = "GreaterThanOrEqualToThreshold"
      evaluation_periods = 2
      period_seconds     = 60
      action             = "scale_out"
      severity           = "warning"
    }
    HighErrorRate = {
      statistic          = "Sum"
      threshold          = 10
      comparison         = "GreaterThanOrEqualToThreshold"
      evaluation_periods = 1
      period_seconds     = 60
      action             = "notify"
      severity           = "warning"
    }
    LowHealthyHosts = {
      statistic          = "Minimum"
      threshold          = 2
      comparison         = "LessThanThreshold"
      evaluation_periods = 1
      period_seconds     = 60
      action             = "notify"
      severity           = "critical"
    }
    HighMemoryUsage = {
      statistic          = "Average"
      threshold          = 85
      comparison         = "GreaterThanOrEqualToThreshold"
      evaluation_periods = 2
      period_seconds     = 60
      action             = "scale_out"
      severity           = "warning"
    }
    DatabaseConnections = {
      statistic          = "Maximum"
      threshold          = 80
      comparison         = "GreaterThanThreshold"
      evaluation_periods = 1
      period_seconds     = 60
      action             = "notify"
      severity           = "warning"
    }
  }
}

variable "alert_emails" {
  description = "On-call e-mail addresses for all alarms (MON-2)."
  type        = list(string)
  default     = []
}

variable "critical_emails" {
  description = "E-mail addresses for critical alarms only."
  type        = list(string)
  default     = []
}

variable "alert_https_endpoints" {
  description = "HTTPS endpoints for all alarms, e.g. a relay to Slack #alerts (MON-2)."
  type        = list(string)
  default     = []
}

variable "critical_https_endpoints" {
  description = "HTTPS endpoints for critical alarms only, e.g. PagerDuty (MON-2)."
  type        = list(string)
  default     = []
}

variable "deployment_mode" {
  description = "How deployops deploys: \"services\" (one ECS service per colour) or \"ecs-native\" (ECS BLUE_GREEN); must match aws.mode in deployops.yaml."
  type        = string
  default     = "services"
}
