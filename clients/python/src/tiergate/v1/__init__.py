"""Generated from protos/tiergate/v1 by make proto."""
