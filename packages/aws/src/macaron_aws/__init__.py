"""macaron-aws: Elastic Beanstalk for macaron services."""
