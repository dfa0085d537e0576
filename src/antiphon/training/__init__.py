"""Training with PyTorch (the ``train`` extra). Never imported on the instrument path."""
