def setup(size, device):
    return list(range(size))


def run(values):
    return sum(v * v for v in values)
