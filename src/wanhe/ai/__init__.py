"""AI generation: diffusion pipelines from local folders, seeds and recipes, scoring."""
