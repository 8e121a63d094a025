apimain
