"""The store example: items kept in DynamoDB through macaron-dynamodb (see apis/store.yaml)."""
