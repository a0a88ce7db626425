"""What runs an IR: the reference interpreter, weight binding (state_dict, module, safetensors), and the
verifier that compares the IR with eager PyTorch."""
