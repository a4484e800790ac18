module github.com/veloxhq/velox

go 1.26
