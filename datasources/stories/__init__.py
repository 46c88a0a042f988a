"""Stories documents: a `StoryStore` protocol with a relational and a MongoDB implementation."""
