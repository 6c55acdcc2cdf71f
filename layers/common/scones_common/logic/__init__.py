"""Domain logic of the three steps, free of Lambda and of boto3."""
