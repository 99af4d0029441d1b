// TillerModels: checkpoints (safetensors, config.json), tokenizers, the transformer forward pass
// written against the Backend protocol, and generation.
