from collections import deque
import heapq


class Graph:
    """A directed graph with weighted edges."""

    def __init__(self):
        self.edges = {}

    def add_edge(self, a, b, weight=1):
        self.edges.setdefault(a, []).append((b, weight))
        self.edges.setdefault(b, [])

    def neighbours(self, node):
        return [b for b, _ in self.edges.get(node, [])]

    def bfs(self, start):
        seen = {start}
        order = []
        queue = deque([start])
        while queue:
            node = queue.popleft()
            order.append(node)
            for nxt in self.neighbours(node):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return order

    def shortest_paths(self, start):
        dist = {start: 0}
        heap = [(0, start)]
        while heap:
            d, node = heapq.heappop(heap)
            if d > dist.get(node, float("inf")):
                continue
            for nxt, w in self.edges.get(node, []):
                nd = d + w
                if nd < dist.get(nxt, float("inf")):
                    dist[nxt] = nd
                    heapq.heappush(heap, (nd, nxt))
        return dist

    def topological_order(self):
        indegree = {n: 0 for n in self.edges}
        for node in self.edges:
            for nxt in self.neighbours(node):
                indegree[nxt] += 1
        ready = sorted(n for n, k in indegree.items() if k == 0)
        order = []
        while ready:
            node = ready.pop(0)
            order.append(node)
            for nxt in self.neighbours(node):
                indegree[nxt] -= 1
                if indegree[nxt] == 0:
                    ready.append(nxt)
        if len(order) != len(self.edges):
            raise ValueError("graph has a cycle")
        return order
