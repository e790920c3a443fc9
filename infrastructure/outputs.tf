# deployops reads these with `terraform output -json > tf-outputs.json` and
# deployops.config.terraform_outputs.load_terraform_outputs (docs/infrastructure.md).

output "region" {
  description = "Primary region of the stack."
  value       = var.region
}

output "dr_region" {
  description = "Region prepared for level-3 recovery (DR-5)."
  value       = var.dr_region
}

output "cluster_name" {
  description = "ECS cluster name."
  value       = module.ecs.cluster_name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = module.ecs.cluster_arn
}

output "service_name" {
  description = "ECS service name."
  value       = module.ecs.service_name
}

output "task_definition_family" {
  description = "Task-definition family deployops registers revisions in."
  value       = module.ecs.task_definition_family
}

output "container_name" {
  description = "Application container name in the task definition."
  value       = module.ecs.container_name
}

output "prod_listener_arn" {
  description = "Production listener (HTTPS 443)."
  value       = module.ecs.prod_listener_arn
}

output "test_listener_arn" {
  description = "Test listener (idle color before the switch)."
  value       = module.ecs.test_listener_arn
}

output "blue_target_group_arn" {
  description = "Blue target group."
  value       = module.ecs.blue_target_group_arn
}

output "green_target_group_arn" {
  description = "Green target group."
  value       = module.ecs.green_target_group_arn
}

output "alb_dns_name" {
  description = "DNS name of the load balancer."
  value       = module.ecs.alb_dns_name
}

output "private_subnet_ids" {
  description = "Private subnets for tasks started by deployops."
  value       = module.vpc.private_subnet_ids
}

output "tasks_security_group_id" {
  description = "Security group for tasks started by deployops."
  value       = module.vpc.tasks_security_group_id
}

output "log_group_name" {
  description = "CloudWatch log group of the application."
  value       = module.ecs.log_group_name
}

output "db_endpoint" {
  description = "Database endpoint (host:port)."
  value       = module.rds.db_endpoint
}

output "db_instance_identifier" {
  description = "Database instance identifier (for snapshot restores, DR-4)."
  value       = module.rds.db_instance_identifier
}

output "db_master_user_secret_arn" {
  description = "Secrets Manager secret of the database master user (null when not managed by RDS)."
  value       = module.rds.master_user_secret_arn
}

output "alert_topic_arn" {
  description = "SNS topic for all alarms."
  value       = module.monitoring.alert_topic_arn
}

output "critical_topic_arn" {
  description = "SNS topic for critical alarms."
  value       = module.monitoring.critical_topic_arn
}

output "alarm_names" {
  description = "CloudWatch alarm names by guide name (MON-1)."
  value       = module.monitoring.alarm_names
}

output "deployment_mode" {
  description = "How deployops deploys (aws.mode in deployops.yaml): services or ecs-native."
  value       = module.ecs.deployment_mode
}

output "service_names" {
  description = "ECS service name by colour (or \"native\")."
  value       = module.ecs.service_names
}

output "vpc_id" {
  description = "VPC of the services and target groups."
  value       = module.ecs.vpc_id
}

output "task_execution_role_arn" {
  description = "Execution role of the task definitions deployops registers."
  value       = module.ecs.execution_role_arn
}

output "task_role_arn" {
  description = "Task role of the task definitions deployops registers."
  value       = module.ecs.task_role_arn
}

output "prod_listener_rule_arn" {
  description = "ecs-native: production listener rule ECS shifts (null in services mode)."
  value       = module.ecs.prod_listener_rule_arn
}

output "test_listener_rule_arn" {
  description = "ecs-native: test listener rule ECS shifts (null in services mode)."
  value       = module.ecs.test_listener_rule_arn
}

output "ecs_infrastructure_role_arn" {
  description = "ecs-native: role ECS uses to shift the listener rules (null in services mode)."
  value       = module.ecs.ecs_infrastructure_role_arn
}
