def setup(size, device):
    return list(range(size))


def run(inputs):
    total = sum(inputs)
    return total / (len(inputs) - len(inputs))
