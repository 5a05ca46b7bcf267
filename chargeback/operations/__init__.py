"""Operations after the figures: mail delivery, period close, the GL journal, the run lock."""
