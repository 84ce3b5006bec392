import time


def setup(size, device):
    return size


def run(inputs):
    time.sleep(3600)
    return inputs
