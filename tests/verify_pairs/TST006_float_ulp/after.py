import numpy as np


def setup(size, device):
    return np.random.default_rng(0).standard_normal(size) * 1e3


def run(values):
    return (values * values).tolist()
