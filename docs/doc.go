// Package docs holds the lab's reference pages, linked from README.md; its test checks that every link resolves.
package docs
