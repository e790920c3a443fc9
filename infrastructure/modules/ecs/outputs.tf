output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "cluster_arn" {
  description = "ARN of the ECS cluster."
  value       = aws_ecs_cluster.this.arn
}

output "service_name" {
  description = "Base name of the ECS service(s): in \"services\" mode the colours are <name>-blue and <name>-green."
  value       = var.name
}

output "task_definition_family" {
  description = "Task-definition family; deployops registers new revisions in it (DEP-1)."
  value       = aws_ecs_task_definition.this.family
}

output "container_name" {
  description = "Name of the application container."
  value       = var.container_name
}

output "container_port" {
  description = "Port of the application container."
  value       = var.container_port
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = aws_iam_role.execution.arn
}

output "task_role_arn" {
  description = "ARN of the task role."
  value       = aws_iam_role.task.arn
}

output "log_group_name" {
  description = "CloudWatch log group of the application."
  value       = aws_cloudwatch_log_group.app.name
}

output "alb_arn" {
  description = "ARN of the application load balancer."
  value       = aws_lb.this.arn
}

output "alb_arn_suffix" {
  description = "ARN suffix of the load balancer, the `LoadBalancer` dimension of its CloudWatch metrics."
  value       = aws_lb.this.arn_suffix
}

output "alb_dns_name" {
  description = "DNS name of the load balancer (point the service's DNS record at it)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Hosted zone of the load balancer, for Route 53 alias records (DR-5 DNS failover)."
  value       = aws_lb.this.zone_id
}

output "prod_listener_arn" {
  description = "ARN of the production (HTTPS 443) listener."
  value       = aws_lb_listener.production.arn
}

output "test_listener_arn" {
  description = "ARN of the test listener."
  value       = aws_lb_listener.test.arn
}

output "blue_target_group_arn" {
  description = "ARN of the blue target group."
  value       = aws_lb_target_group.this["blue"].arn
}

output "green_target_group_arn" {
  description = "ARN of the green target group."
  value       = aws_lb_target_group.this["green"].arn
}

output "blue_target_group_arn_suffix" {
  description = "ARN suffix of the blue target group (`TargetGroup` metric dimension)."
  value       = aws_lb_target_group.this["blue"].arn_suffix
}

output "green_target_group_arn_suffix" {
  description = "ARN suffix of the green target group (`TargetGroup` metric dimension)."
  value       = aws_lb_target_group.this["green"].arn_suffix
}

output "services" {
  description = "Per ECS service (blue and green, or native): its name and the step-scaling policy that adds one task to it; the monitoring module gives each its own scale-out alarms."
  value = {
    for key, svc in aws_ecs_service.this : key => {
      service_name         = svc.name
      scale_out_policy_arn = aws_appautoscaling_policy.scale_out[key].arn
    }
  }
}

output "web_acl_arn" {
  description = "ARN of the WAF web ACL, or null when enable_waf is false."
  value       = var.enable_waf ? aws_wafv2_web_acl.this[0].arn : null
}

output "deployment_mode" {
  description = "How deployops deploys this stack (\"services\" or \"ecs-native\"); aws.mode in deployops.yaml must match."
  value       = var.deployment_mode
}

output "service_names" {
  description = "ECS service name by colour (blue, green) or \"native\" in ecs-native mode."
  value       = { for key, svc in aws_ecs_service.this : key => svc.name }
}

output "vpc_id" {
  description = "VPC of the target groups."
  value       = var.vpc_id
}

output "prod_listener_rule_arn" {
  description = "ecs-native: the production listener rule ECS shifts; null in services mode."
  value       = var.deployment_mode == "ecs-native" ? aws_lb_listener_rule.native["production"].arn : null
}

output "test_listener_rule_arn" {
  description = "ecs-native: the test listener rule ECS shifts; null in services mode."
  value       = var.deployment_mode == "ecs-native" ? aws_lb_listener_rule.native["test"].arn : null
}

output "ecs_infrastructure_role_arn" {
  description = "ecs-native: the role ECS uses to modify the listener rules; null in services mode."
  value       = var.deployment_mode == "ecs-native" ? aws_iam_role.ecs_infrastructure[0].arn : null
}
