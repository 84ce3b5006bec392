def setup(size, device):
    return size


def run(size):
    return sum(len(f"line {i:>12}\n") for i in range(size))
