"""Campaigns: selecting consumers, rules for when to send and to cut, and the send job."""
