"""The demo's timm fixture (package data): a 2-block ViT checkpoint, and timm's logits for it."""
