"""macaron-gke: the deploy targets ``gke`` (Kubernetes, through the official client) and ``cloudrun`` (Cloud Run v2)."""
