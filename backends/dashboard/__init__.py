"""Server-rendered pages for users and operators (issue 16): thin views over the API's domain."""
