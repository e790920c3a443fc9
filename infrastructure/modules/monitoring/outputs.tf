output "alert_topic_arn" {
  description = "SNS topic for all alarms (Slack #alerts relay, on-call e-mail); deployops publishes deployment notices here too."
  value       = aws_sns_topic.alerts.arn
}

output "critical_topic_arn" {
  description = "SNS topic for critical alarms only (PagerDuty)."
  value       = aws_sns_topic.critical.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting both topics; a publisher outside CloudWatch needs kms:GenerateDataKey* and kms:Decrypt on it."
  value       = aws_kms_key.sns.arn
}

output "alarm_names" {
  description = "CloudWatch alarm names by guide name (HighCPUUtilization, HighErrorRate, LowHealthyHosts, HighMemoryUsage, DatabaseConnections); the per-colour ones as a map by colour."
  value = {
    HighCPUUtilization  = { for key, a in aws_cloudwatch_metric_alarm.high_cpu : key => a.alarm_name }
    HighErrorRate       = { for key, a in aws_cloudwatch_metric_alarm.high_error_rate : key => a.alarm_name }
    LowHealthyHosts     = aws_cloudwatch_metric_alarm.low_healthy_hosts.alarm_name
    HighMemoryUsage     = { for key, a in aws_cloudwatch_metric_alarm.high_memory : key => a.alarm_name }
    DatabaseConnections = aws_cloudwatch_metric_alarm.database_connections.alarm_name
  }
}

output "alarm_arns" {
  description = "CloudWatch alarm ARNs by guide name; the per-colour ones as a map by colour."
  value = {
    HighCPUUtilization  = { for key, a in aws_cloudwatch_metric_alarm.high_cpu : key => a.arn }
    HighErrorRate       = { for key, a in aws_cloudwatch_metric_alarm.high_error_rate : key => a.arn }
    LowHealthyHosts     = aws_cloudwatch_metric_alarm.low_healthy_hosts.arn
    HighMemoryUsage     = { for key, a in aws_cloudwatch_metric_alarm.high_memory : key => a.arn }
    DatabaseConnections = aws_cloudwatch_metric_alarm.database_connections.arn
  }
}
