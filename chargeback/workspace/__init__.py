"""The workspace: YAML read safely, validated in layers, into typed, frozen rules."""
