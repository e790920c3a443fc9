"""The ``aws`` platform: ECS on Fargate, ALB, CloudWatch, Application Auto Scaling, SNS."""
