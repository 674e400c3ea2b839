"""The `norm` group's names, with no imports: the config check reads them before torch loads."""

NORMS = ("none", "torch_bn", "autograd_bn", "custom_bn")  # built by dlexp.nn.norm.make_norm
