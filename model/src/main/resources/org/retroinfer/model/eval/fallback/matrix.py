class Matrix:
    def __init__(self, rows, cols, fill=0.0):
        self.rows = rows
        self.cols = cols
        self.data = [[fill] * cols for _ in range(rows)]

    @classmethod
    def identity(cls, n):
        m = cls(n, n)
        for i in range(n):
            m.data[i][i] = 1.0
        return m

    def __getitem__(self, index):
        i, j = index
        return self.data[i][j]

    def __setitem__(self, index, value):
        i, j = index
        self.data[i][j] = value

    def __matmul__(self, other):
        if self.cols != other.rows:
            raise ValueError("shape mismatch: %dx%d @ %dx%d"
                             % (self.rows, self.cols, other.rows, other.cols))
        out = Matrix(self.rows, other.cols)
        for i in range(self.rows):
            for k in range(self.cols):
                a = self.data[i][k]
                if a == 0:
                    continue
                for j in range(other.cols):
                    out.data[i][j] += a * other.data[k][j]
        return out

    def transpose(self):
        out = Matrix(self.cols, self.rows)
        for i in range(self.rows):
            for j in range(self.cols):
                out.data[j][i] = self.data[i][j]
        return out

    def __repr__(self):
        return "Matrix(%d, %d)" % (self.rows, self.cols)
