"""cocotb testbenches for hwmlp circuits (installed as ``hwmlp.sim``)."""
