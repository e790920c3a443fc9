variable "name" {
  description = "Name prefix for every resource in this module (for example `deployops-production`)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,31}$", var.name))
    error_message = "name must be 2-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "cidr" {
  description = "IPv4 CIDR block of the VPC (IAC-2)."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr, 0))
    error_message = "cidr must be a valid IPv4 CIDR block, for example 10.0.0.0/16."
  }
}

variable "azs" {
  description = "Availability zones, one public and one private subnet in each (IAC-2)."
  type        = list(string)
  default     = ["ap-northeast-1a", "ap-northeast-1c"]

  validation {
    condition     = length(var.azs) >= 2
    error_message = "azs must list at least two availability zones (Multi-AZ, IAC-2)."
  }
}

variable "public_subnets" {
  description = "CIDR blocks of the public subnets (load balancer, NAT gateways), one per entry of `azs`."
  type        = list(string)
  default     = ["10.0.0.0/24", "10.0.1.0/24"]
}

variable "private_subnets" {
  description = "CIDR blocks of the private subnets (ECS tasks, database), one per entry of `azs`."
  type        = list(string)
  default     = ["10.0.10.0/24", "10.0.11.0/24"]
}

variable "single_nat_gateway" {
  description = "Use one NAT gateway for all private subnets (cheaper, but an AZ failure cuts egress for the other AZ). Default: one per AZ."
  type        = bool
  default     = false
}

variable "flow_log_retention_in_days" {
  description = "Retention of the VPC flow log group in days (DR-1: logs are kept 90 days)."
  type        = number
  default     = 90
}

variable "container_port" {
  description = "Port the application container listens on; the load balancer reaches tasks on this port only."
  type        = number
  default     = 3000
}

variable "db_port" {
  description = "Port of the database; only the tasks' security group may reach it."
  type        = number
  default     = 5432
}

variable "alb_ingress_cidrs" {
  description = "IPv4 CIDR blocks allowed to reach the production listener (HTTPS 443) and the HTTP-to-HTTPS redirect (80)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "test_listener_port" {
  description = "Port of the load balancer's test listener, which serves the idle (green) target group before the switch."
  type        = number
  default     = 8443
}

variable "test_listener_cidrs" {
  description = "Extra IPv4 CIDR blocks (operators, CI runners) allowed to reach the test listener. The VPC CIDR is always allowed."
  type        = list(string)
  default     = []
}
