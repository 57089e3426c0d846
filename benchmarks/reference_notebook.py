"""The straightforward PyTorch port of the "Anna KaRNNa" notebook a user would write, kept as the
reference that charrnn's training speed is compared against: one-hot input, a fused multi-layer
nn.LSTM with dropout, dropout before a linear output, Adam, global-norm clipping, state carried.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class NotebookLSTM(nn.Module):
    def __init__(self, vocab_size: int, hidden: int, layers: int, dropout: float):
        super().__init__()
        self.vocab_size = vocab_size
        self.lstm = nn.LSTM(vocab_size, hidden, layers, dropout=dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden, vocab_size)

    def forward(self, x, state):
        one_hot = F.one_hot(x, self.vocab_size).float()
        out, state = self.lstm(one_hot, state)
        return self.fc(self.dropout(out)), state


class NotebookTrainer:
    """One training step at a time, exactly as the notebook's loop does it."""

    def __init__(
        self, vocab_size: int, hidden: int, layers: int, batch_size: int, lr=1e-3, clip=5.0, dropout=0.5, device="cpu"
    ):
        self.model = NotebookLSTM(vocab_size, hidden, layers, dropout).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.clip = clip
        shape = (layers, batch_size, hidden)
        self.state = (torch.zeros(shape, device=device), torch.zeros(shape, device=device))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        self.state = tuple(s.detach() for s in self.state)
        self.optimizer.zero_grad()
        logits, self.state = self.model(x, self.state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        return loss.item()
