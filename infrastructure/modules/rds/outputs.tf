output "db_instance_identifier" {
  description = "Identifier of the DB instance (the `DBInstanceIdentifier` metric dimension)."
  value       = aws_db_instance.this.identifier
}

output "db_instance_arn" {
  description = "ARN of the DB instance."
  value       = aws_db_instance.this.arn
}

output "db_endpoint" {
  description = "Connection endpoint as host:port."
  value       = aws_db_instance.this.endpoint
}

output "db_address" {
  description = "Host name of the DB instance (CFG-3: DB_HOST)."
  value       = aws_db_instance.this.address
}

output "db_port" {
  description = "Port of the DB instance (CFG-3: DB_PORT)."
  value       = aws_db_instance.this.port
}

output "db_name" {
  description = "Name of the database (CFG-3: DB_NAME)."
  value       = aws_db_instance.this.db_name
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret with the master credentials, or null when the password is not managed by RDS."
  value       = try(aws_db_instance.this.master_user_secret[0].secret_arn, null)
}

output "max_connections" {
  description = "max_connections set in the parameter group; the DatabaseConnections alarm uses 80 % of it."
  value       = var.max_connections
}

output "kms_key_arn" {
  description = "KMS key encrypting storage, backups, the master secret and exported logs."
  value       = aws_kms_key.this.arn
}

output "replica_arn" {
  description = "ARN of the cross-region read replica (dr_mode = \"read_replica\"), else null."
  value       = local.create_replica ? aws_db_instance.replica[0].arn : null
}

output "replica_endpoint" {
  description = "Endpoint of the cross-region read replica (dr_mode = \"read_replica\"), else null."
  value       = local.create_replica ? aws_db_instance.replica[0].endpoint : null
}

output "replicated_backups_arn" {
  description = "ARN of the replicated automated backups in the recovery region (dr_mode = \"backup_replication\"), else null."
  value       = local.create_backup_replication ? aws_db_instance_automated_backups_replication.this[0].id : null
}
