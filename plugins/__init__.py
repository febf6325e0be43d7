"""pytest plugins of the spotscribe verification framework (hooks and options; logic lives in `fleet`)."""
