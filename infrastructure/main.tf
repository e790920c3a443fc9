# deployops infrastructure (guide section 1): network, ECS service, PostgreSQL and alarms.
# Apply order and the link to deployops: docs/infrastructure.md.

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# Level-3 recovery region (DR-5).
provider "aws" {
  alias  = "dr"
  region = var.dr_region

  default_tags {
    tags = local.tags
  }
}

locals {
  name = "${var.name}-${var.environment}"

  tags = merge(
    {
      Project     = var.name
      Environment = var.environment
      ManagedBy   = "terraform"
    },
    var.tags,
  )
}

module "vpc" {
  source = "./modules/vpc"

  name               = local.name
  cidr               = var.vpc_cidr
  azs                = var.azs
  public_subnets     = var.public_subnets
  private_subnets    = var.private_subnets
  single_nat_gateway = var.single_nat_gateway

  container_port      = var.container_port
  db_port             = var.db_port
  alb_ingress_cidrs   = var.alb_ingress_cidrs
  test_listener_port  = var.test_listener_port
  test_listener_cidrs = var.test_listener_cidrs

  flow_log_retention_in_days = var.log_retention_days
}

module "rds" {
  source = "./modules/rds"

  providers = {
    aws         = aws
    aws.replica = aws.dr
  }

  name               = local.name
  subnet_ids         = module.vpc.private_subnet_ids
  security_group_ids = [module.vpc.db_security_group_id]

  engine_version  = var.db_engine_version
  instance_class  = var.db_instance_class
  db_name         = var.db_name
  port            = var.db_port
  max_connections = var.db_max_connections

  manage_master_user_password = var.db_manage_master_user_password
  master_password             = var.db_master_password

  multi_az                = var.db_multi_az
  backup_retention_period = var.db_backup_retention_days
  deletion_protection     = var.db_deletion_protection
  log_retention_days      = var.log_retention_days

  dr_mode                      = var.db_dr_mode
  replica_db_subnet_group_name = var.dr_db_subnet_group_name
  replica_security_group_ids   = var.dr_db_security_group_ids
}

module "ecs" {
  source = "./modules/ecs"

  name                    = local.name
  vpc_id                  = module.vpc.vpc_id
  public_subnet_ids       = module.vpc.public_subnet_ids
  private_subnet_ids      = module.vpc.private_subnet_ids
  alb_security_group_id   = module.vpc.alb_security_group_id
  tasks_security_group_id = module.vpc.tasks_security_group_id

  container_image = var.container_image
  container_port  = var.container_port
  task_cpu        = var.task_cpu
  task_memory     = var.task_memory

  # CFG-2, CFG-3, CFG-5; user-supplied values win.
  container_environment = merge(
    {
      NODE_ENV   = var.environment
      PORT       = tostring(var.container_port)
      AWS_REGION = var.region
      DB_HOST    = module.rds.db_address
      DB_PORT    = tostring(module.rds.db_port)
      DB_NAME    = module.rds.db_name
    },
    var.container_environment,
  )
  container_secrets     = var.container_secrets
  secrets_kms_key_arns  = var.secrets_kms_key_arns
  ecr_repository_arns   = var.ecr_repository_arns
  task_role_policy_arns = var.task_role_policy_arns

  certificate_arn         = var.certificate_arn
  test_listener_port      = var.test_listener_port
  health_check_path       = var.health_check_path
  enable_waf              = var.enable_waf
  alb_deletion_protection = var.alb_deletion_protection
  log_retention_days      = var.log_retention_days

  deployment_mode                    = var.deployment_mode
  deployment_maximum_percent         = var.deployment_maximum_percent
  deployment_minimum_healthy_percent = var.deployment_minimum_healthy_percent

  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
  cpu_target         = var.cpu_target
  scale_in_cooldown  = var.scale_in_cooldown
  scale_out_cooldown = var.scale_out_cooldown
}

module "monitoring" {
  source = "./modules/monitoring"

  name           = local.name
  cluster_name   = module.ecs.cluster_name
  services       = module.ecs.services
  alb_arn_suffix = module.ecs.alb_arn_suffix
  target_group_arn_suffixes = {
    blue  = module.ecs.blue_target_group_arn_suffix
    green = module.ecs.green_target_group_arn_suffix
  }
  db_instance_identifier = module.rds.db_instance_identifier
  db_max_connections     = module.rds.max_connections

  alarms                   = var.alarms
  alert_emails             = var.alert_emails
  critical_emails          = var.critical_emails
  alert_https_endpoints    = var.alert_https_endpoints
  critical_https_endpoints = var.critical_https_endpoints
}
