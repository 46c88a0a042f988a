"""GraphQL types of the stories domain: stories, stickers, highlights, close friends."""
