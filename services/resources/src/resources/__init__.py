"""The CloudOps resources service: the inventory of cloud resources."""
