################################################################################
# General
################################################################################

variable "name" {
  description = "Identifier of the DB instance and prefix of its parameter group, subnet group and keys."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,53}$", var.name))
    error_message = "name must start with a letter and contain only lowercase letters, digits and hyphens (at most 54 characters)."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the DB subnet group (at least two AZs for Multi-AZ)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids must contain subnets in at least two availability zones."
  }
}

variable "security_group_ids" {
  description = "Security groups of the DB instance (the vpc module's db group)."
  type        = list(string)
}

################################################################################
# Engine and size
################################################################################

variable "engine_version" {
  description = "PostgreSQL version; a major version (\"16\") lets RDS pick and upgrade the minor version."
  type        = string
  default     = "16"
}

variable "instance_class" {
  description = "DB instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
  default     = 50
}

variable "max_allocated_storage" {
  description = "Upper limit in GiB for storage autoscaling."
  type        = number
  default     = 200
}

variable "db_name" {
  description = "Name of the database created in the instance (CFG-3: DB_NAME)."
  type        = string
  default     = "app"
}

variable "username" {
  description = "Master user name."
  type        = string
  default     = "app_admin"
}

variable "port" {
  description = "Port PostgreSQL listens on (CFG-3: DB_PORT)."
  type        = number
  default     = 5432
}

variable "max_connections" {
  description = "PostgreSQL max_connections, set explicitly so the DatabaseConnections alarm (MON-1, > 80 % of max) has a fixed reference. Keep it within what the instance class's memory allows."
  type        = number
  default     = 400
}

################################################################################
# Credentials (SEC-1)
################################################################################

variable "manage_master_user_password" {
  description = "Let RDS generate the master password, keep it in Secrets Manager and rotate it (SEC-1). AWS does not allow read replicas of such an instance, so dr_mode = \"read_replica\" needs false."
  type        = bool
  default     = true
}

variable "master_password" {
  description = "Master password, only when manage_master_user_password is false. It is stored in the Terraform state, so keep the state encrypted and private."
  type        = string
  default     = null
  sensitive   = true
}

################################################################################
# Availability, backup and recovery (DR-1, DR-2, DR-4, DR-5)
################################################################################

variable "multi_az" {
  description = "Run a synchronous standby in a second AZ."
  type        = bool
  default     = true
}

variable "backup_retention_period" {
  description = "Days of automated snapshots and transaction logs kept for point-in-time recovery (DR-1: 30 days)."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_period >= 1 && var.backup_retention_period <= 35
    error_message = "backup_retention_period must be between 1 and 35 days (RDS limit); 0 would disable PITR."
  }
}

variable "backup_window" {
  description = "Daily backup window in UTC (default 02:00-03:00 JST)."
  type        = string
  default     = "17:00-18:00"
}

variable "maintenance_window" {
  description = "Weekly maintenance window in UTC (default Monday 03:30-04:30 JST)."
  type        = string
  default     = "sun:18:30-sun:19:30"
}

variable "deletion_protection" {
  description = "Refuse to delete the DB instance."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "Retention in days of the PostgreSQL logs exported to CloudWatch Logs (DR-1: 90 days)."
  type        = number
  default     = 90
}

variable "performance_insights_retention_period" {
  description = "Days of Performance Insights history (7 is free)."
  type        = number
  default     = 7
}

variable "monitoring_interval" {
  description = "Seconds between Enhanced Monitoring samples (0 turns it off)."
  type        = number
  default     = 60
}

variable "dr_mode" {
  description = "Level-3 recovery preparation in the aws.replica region (DR-5): \"backup_replication\" copies snapshots and transaction logs there (restore to a point in time); \"read_replica\" keeps a cross-region read replica to promote (needs manage_master_user_password = false and replica_db_subnet_group_name); \"none\" prepares nothing."
  type        = string
  default     = "backup_replication"

  validation {
    condition     = contains(["none", "backup_replication", "read_replica"], var.dr_mode)
    error_message = "dr_mode must be one of none, backup_replication, read_replica."
  }
}

variable "replica_instance_class" {
  description = "Instance class of the cross-region read replica (defaults to instance_class)."
  type        = string
  default     = null
}

variable "replica_db_subnet_group_name" {
  description = "DB subnet group in the recovery region for the read replica (dr_mode = \"read_replica\")."
  type        = string
  default     = null
}

variable "replica_security_group_ids" {
  description = "Security groups in the recovery region for the read replica (dr_mode = \"read_replica\")."
  type        = list(string)
  default     = []
}
