"""The household's prepaid balance (预存), optionally spent with its prepaid card (预付费卡)."""
