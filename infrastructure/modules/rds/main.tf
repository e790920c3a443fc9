# PostgreSQL for the service: Multi-AZ, private, encrypted with a dedicated key, 30 days of
# point-in-time recovery (DR-1, DR-2), deletion protection, master password in Secrets Manager
# (SEC-1), logs to CloudWatch for 90 days, and a copy in a second region for level-3 recovery
# (DR-5).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  family     = "postgres${split(".", var.engine_version)[0]}"

  create_replica            = var.dr_mode == "read_replica"
  create_backup_replication = var.dr_mode == "backup_replication"
  create_replica_region_key = var.dr_mode != "none"

  log_exports = ["postgresql", "upgrade"]

  parameters = [
    # Fixed reference for the DatabaseConnections alarm (MON-1). Static: applied at reboot.
    { name = "max_connections", value = tostring(var.max_connections), apply_method = "pending-reboot" },
    # Refuse unencrypted client connections.
    { name = "rds.force_ssl", value = "1", apply_method = "immediate" },
    # Audit schema changes and log statements slower than one second.
    { name = "log_statement", value = "ddl", apply_method = "immediate" },
    { name = "log_min_duration_statement", value = "1000", apply_method = "immediate" },
  ]
}

################################################################################
# Encryption key (storage, Performance Insights, master secret, exported logs)
################################################################################

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy; Resource "*" means the key itself, and key administration stays with the owning account.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy; Resource "*" means the key itself, and key administration stays with the owning account.
  #checkov:skip=CKV_AWS_356:This is a KMS key policy; Resource "*" means the key itself.
  statement {
    sid       = "AccountAdministration"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsUse"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/rds/instance/${var.name}/*"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: database storage, backups, secret and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-db"
  target_key_id = aws_kms_key.this.key_id
}

################################################################################
# Networking and parameters
################################################################################

resource "aws_db_subnet_group" "this" {
  name        = var.name
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name        = "${var.name}-${local.family}"
  family      = local.family
  description = "Parameters of ${var.name}"

  dynamic "parameter" {
    for_each = local.parameters

    content {
      name         = parameter.value.name
      value        = parameter.value.value
      apply_method = parameter.value.apply_method
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

################################################################################
# Logs (DR-1) and Enhanced Monitoring
################################################################################

# Created before the instance so RDS does not create them with unlimited retention.
resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_338:Retention follows the backup policy (DR-1: logs 90 days), set by log_retention_days.
  for_each = toset(local.log_exports)

  name              = "/aws/rds/instance/${var.name}/${each.value}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.this.arn
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  count = var.monitoring_interval > 0 ? 1 : 0

  name               = "${var.name}-rds-monitoring"
  description        = "Enhanced Monitoring of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  count = var.monitoring_interval > 0 ? 1 : 0

  role       = aws_iam_role.monitoring[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

################################################################################
# Primary instance
################################################################################

resource "aws_db_instance" "this" {
  identifier     = var.name
  engine         = "postgres"
  engine_version = var.engine_version
  instance_class = var.instance_class

  allocated_storage     = var.allocated_storage
  max_allocated_storage = var.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.this.arn

  db_name  = var.db_name
  username = var.username
  port     = var.port

  # SEC-1: RDS generates the password, keeps it in Secrets Manager and rotates it.
  manage_master_user_password   = var.manage_master_user_password ? true : null
  master_user_secret_kms_key_id = var.manage_master_user_password ? aws_kms_key.this.arn : null
  password                      = var.manage_master_user_password ? null : var.master_password

  multi_az               = var.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = var.security_group_ids
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  # DR-1, DR-2: daily snapshots and transaction logs, point-in-time recovery within 30 days.
  backup_retention_period  = var.backup_retention_period
  backup_window            = var.backup_window
  maintenance_window       = var.maintenance_window
  copy_tags_to_snapshot    = true
  delete_automated_backups = false

  deletion_protection       = var.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-final"

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true
  apply_immediately                   = false

  enabled_cloudwatch_logs_exports       = local.log_exports
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.this.arn
  performance_insights_retention_period = var.performance_insights_retention_period
  monitoring_interval                   = var.monitoring_interval
  monitoring_role_arn                   = var.monitoring_interval > 0 ? aws_iam_role.monitoring[0].arn : null

  depends_on = [aws_cloudwatch_log_group.this, aws_iam_role_policy_attachment.monitoring]

  lifecycle {
    precondition {
      condition     = var.manage_master_user_password || var.master_password != null
      error_message = "Set master_password when manage_master_user_password is false."
    }

    precondition {
      # AWS rejects read replicas of an instance whose master password RDS manages
      # ("Creating read replicas for source instance ... where ManageMasterUserPassword is
      # enabled is not supported"; RDS user guide, Secrets Manager integration limitations).
      condition     = !(local.create_replica && var.manage_master_user_password)
      error_message = "dr_mode = \"read_replica\" needs manage_master_user_password = false (AWS cannot replicate an instance whose master password RDS manages); use dr_mode = \"backup_replication\" to keep the managed password."
    }
  }
}

################################################################################
# Level-3 recovery in the aws.replica region (DR-5)
################################################################################

data "aws_caller_identity" "replica" {
  provider = aws.replica
}

data "aws_region" "replica" {
  provider = aws.replica
}

resource "aws_kms_key" "replica" {
  count    = local.create_replica_region_key ? 1 : 0
  provider = aws.replica

  description             = "${var.name}: replicated database backups / read replica in ${data.aws_region.replica.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministration"
      Effect    = "Allow"
      Principal = { AWS = "arn:${local.partition}:iam::${data.aws_caller_identity.replica.account_id}:root" }
      Action    = "kms:*"
      Resource  = "*"
    }]
  })
}

resource "aws_kms_alias" "replica" {
  count    = local.create_replica_region_key ? 1 : 0
  provider = aws.replica

  name          = "alias/${var.name}-db-dr"
  target_key_id = aws_kms_key.replica[0].key_id
}

# Snapshots and transaction logs copied to the recovery region: restore there to any point in
# the retention window with `aws rds restore-db-instance-to-point-in-time
# --source-db-instance-automated-backups-arn ...`.
resource "aws_db_instance_automated_backups_replication" "this" {
  count    = local.create_backup_replication ? 1 : 0
  provider = aws.replica

  source_db_instance_arn = aws_db_instance.this.arn
  retention_period       = var.backup_retention_period
  kms_key_id             = aws_kms_key.replica[0].arn
}

resource "aws_db_parameter_group" "replica" {
  count    = local.create_replica ? 1 : 0
  provider = aws.replica

  name        = "${var.name}-replica-${local.family}"
  family      = local.family
  description = "Parameters of the ${var.name} cross-region replica"

  dynamic "parameter" {
    for_each = local.parameters

    content {
      name         = parameter.value.name
      value        = parameter.value.value
      apply_method = parameter.value.apply_method
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_157:A standby replica for region failure; after promotion (DR-5) switch it to Multi-AZ with `aws rds modify-db-instance --multi-az`.
  count    = local.create_replica ? 1 : 0
  provider = aws.replica

  identifier          = "${var.name}-replica"
  replicate_source_db = aws_db_instance.this.arn
  instance_class      = coalesce(var.replica_instance_class, var.instance_class)

  storage_type      = "gp3"
  storage_encrypted = true
  kms_key_id        = aws_kms_key.replica[0].arn

  db_subnet_group_name   = var.replica_db_subnet_group_name
  vpc_security_group_ids = var.replica_security_group_ids
  parameter_group_name   = aws_db_parameter_group.replica[0].name
  publicly_accessible    = false
  multi_az               = false

  copy_tags_to_snapshot               = true
  deletion_protection                 = var.deletion_protection
  skip_final_snapshot                 = true
  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true

  enabled_cloudwatch_logs_exports       = local.log_exports
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.replica[0].arn
  performance_insights_retention_period = var.performance_insights_retention_period
  monitoring_interval                   = var.monitoring_interval
  monitoring_role_arn                   = var.monitoring_interval > 0 ? aws_iam_role.monitoring[0].arn : null

  lifecycle {
    precondition {
      condition     = var.replica_db_subnet_group_name != null && length(var.replica_security_group_ids) > 0
      error_message = "dr_mode = \"read_replica\" needs replica_db_subnet_group_name and replica_security_group_ids in the recovery region."
    }
  }
}
