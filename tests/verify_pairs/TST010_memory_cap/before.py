MIB = 1024 * 1024


def setup(size, device):
    return size


def run(size):
    return len(bytearray(size * MIB))
