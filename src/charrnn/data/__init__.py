"""Text in, ids out: reading corpora (corpus), the vocabulary (vocab), prepared corpora memory-mapped
from disk (prepared), the streams x steps batches (batches), and a run's text as training sees it (dataset)."""
