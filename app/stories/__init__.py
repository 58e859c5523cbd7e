"""Stories: Story, Turn, GenerationJob, the relay rules, reader/writer views, export."""
